"""`python -m trainers.preference_vector`, kept for existing scripts: runs `paretoapp.trainers.preference_vector`."""

from paretoapp.trainers.preference_vector import main

if __name__ == "__main__":
    main()
