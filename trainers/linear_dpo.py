"""`python -m trainers.linear_dpo`, kept for existing scripts: runs `paretoapp.trainers.linear_dpo`."""

from paretoapp.trainers.linear_dpo import main

if __name__ == "__main__":
    main()
