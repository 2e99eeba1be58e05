"""`python -m trainers.objective_adapter`, kept for existing scripts: runs `paretoapp.trainers.objective_adapter`."""

from paretoapp.trainers.objective_adapter import main

if __name__ == "__main__":
    main()
