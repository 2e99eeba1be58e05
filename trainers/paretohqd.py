"""`python -m trainers.paretohqd`, kept for existing scripts: runs `paretoapp.trainers.paretohqd`."""

from paretoapp.trainers.paretohqd import main

if __name__ == "__main__":
    main()
