"""`python -m trainers.paretohqd`: the checkout's door onto `paretoapp train paretohqd` (runs `paretoapp.trainers.paretohqd`)."""

from paretoapp.trainers.paretohqd import main

if __name__ == "__main__":
    main()
