"""`python -m trainers.preference_vector`: the checkout's door onto `paretoapp train preference_vector` (runs `paretoapp.trainers.preference_vector`)."""

from paretoapp.trainers.preference_vector import main

if __name__ == "__main__":
    main()
