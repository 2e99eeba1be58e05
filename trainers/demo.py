"""`python -m trainers.demo`: the checkout's door onto `paretoapp demo` (runs `paretoapp.demo.cli`)."""

from paretoapp.demo.cli import main

if __name__ == "__main__":
    main()
