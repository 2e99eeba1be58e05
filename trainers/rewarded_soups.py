"""`python -m trainers.rewarded_soups`, kept for existing scripts: runs `paretoapp.trainers.rewarded_soups`."""

from paretoapp.trainers.rewarded_soups import main

if __name__ == "__main__":
    main()
