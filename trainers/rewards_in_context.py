"""`python -m trainers.rewards_in_context`, kept for existing scripts: runs `paretoapp.trainers.rewards_in_context`."""

from paretoapp.trainers.rewards_in_context import main

if __name__ == "__main__":
    main()
