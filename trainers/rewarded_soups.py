"""`python -m trainers.rewarded_soups`: the checkout's door onto `paretoapp train rewarded_soups` (runs `paretoapp.trainers.rewarded_soups`)."""

from paretoapp.trainers.rewarded_soups import main

if __name__ == "__main__":
    main()
