"""`python -m trainers.panacea`: the checkout's door onto `paretoapp train panacea` (runs `paretoapp.trainers.panacea`)."""

from paretoapp.trainers.panacea import main

if __name__ == "__main__":
    main()
