"""`python -m trainers.peo`: the checkout's door onto `paretoapp train peo` (runs `paretoapp.trainers.peo`)."""

from paretoapp.trainers.peo import main

if __name__ == "__main__":
    main()
