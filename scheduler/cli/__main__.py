from scheduler.cli import run

run()
