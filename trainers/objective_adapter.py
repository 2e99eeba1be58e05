"""`python -m trainers.objective_adapter`: the checkout's door onto one objective's phase-1 adapters
(runs `paretoapp.trainers.objective_adapter`)."""

from paretoapp.trainers.objective_adapter import main

if __name__ == "__main__":
    main()
