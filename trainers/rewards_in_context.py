"""`python -m trainers.rewards_in_context`: the checkout's door onto `paretoapp train rewards_in_context` (runs `paretoapp.trainers.rewards_in_context`)."""

from paretoapp.trainers.rewards_in_context import main

if __name__ == "__main__":
    main()
