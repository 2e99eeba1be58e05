"""`python -m trainers.linear_dpo`: the checkout's door onto `paretoapp train linear_dpo` (runs `paretoapp.trainers.linear_dpo`)."""

from paretoapp.trainers.linear_dpo import main

if __name__ == "__main__":
    main()
