"""`python -m trainers.upo`: the checkout's door onto `paretoapp train upo` (runs `paretoapp.trainers.upo`)."""

from paretoapp.trainers.upo import main

if __name__ == "__main__":
    main()
