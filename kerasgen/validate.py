"""Argument checks, one per requirement, each with one message: `latent_dim must be a positive int.
Received: latent_dim=0`.

The library's constructors and functions and the run configs' fields (`config.py`) all check through
these, so a requirement reads the same wherever it is refused. Messages name the Python argument;
the CLI translates them into its flags (`config.to_flags`). Imports no TensorFlow and no NumPy,
so the configs and `kerasgen --help` stay fast; NumPy's integers and floats pass as ints and numbers.

    validate.positive_int("latent_dim", latent_dim)
    validate.number("ema_decay", ema_decay, at_least=0, below=1)   # "must be a number in [0, 1)"
    validate.one_of("prior", prior, ("normal", "mixture"))
"""

import math
import numbers


def refuse(name, requirement, value):
    """Raises the house-style `ValueError`: `{name} must be {requirement}. Received: {name}={value!r}`."""
    raise ValueError(f"{name} must be {requirement}. Received: {name}={value!r}")


def is_int(value):
    """True for Python's and NumPy's integers, False for bools (which Python counts as ints)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def integer(name, value, minimum=None):
    """Refuses anything but an int (not a bool) of at least `minimum`.

    Args:
        name: str, the argument's name, as the message gives it.
        value: the value received.
        minimum: int or None, the smallest accepted value; None accepts any int. Defaults to None.

    Returns:
        `value`, unchanged.

    Raises:
        ValueError: "must be a positive int" (minimum 1), "must be an int >= {minimum}" or "must be an int".
    """
    if not is_int(value) or (minimum is not None and value < minimum):
        refuse(name, "a positive int" if minimum == 1 else "an int" + ("" if minimum is None else f" >= {minimum}"), value)
    return value


def positive_int(name, value):
    """Refuses anything but an int >= 1: `num_samples must be a positive int. Received: num_samples=0`."""
    return integer(name, value, minimum=1)


def positive_ints(name, values):
    """Refuses anything but a non-empty list or tuple of ints >= 1 (filters per level, layer widths)."""
    if not isinstance(values, (list, tuple)) or not values or not all(is_int(v) and v >= 1 for v in values):
        refuse(name, "a non-empty sequence of positive ints", values)
    return values


def number(name, value, *, above=None, at_least=None, below=None, at_most=None):
    """Refuses anything but a finite int or float (not a bool) within the given bounds.

    Args:
        name: str, the argument's name.
        value: the value received.
        above, at_least: the lower bound, exclusive or inclusive; at most one of them.
        below, at_most: the upper bound, exclusive or inclusive; at most one of them.

    Returns:
        `value`, unchanged.

    Raises:
        ValueError: "must be a number > 0", "... >= 0", "... in [0, 1)", "... in (0, 1]"; "a finite
            number" when the value is NaN or infinite.

    Example:

        validate.number("beta", beta, at_least=0)                     # beta must be a number >= 0
        validate.number("kl_cycle_ratio", ratio, above=0, at_most=1)  # ... a number in (0, 1]
    """
    bounds = _bounds(above, at_least, below, at_most)
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        refuse(name, "a number" + bounds, value)
    if not math.isfinite(value):
        refuse(name, "a finite number" + bounds, value)
    if (
        (above is not None and not value > above)
        or (at_least is not None and not value >= at_least)
        or (below is not None and not value < below)
        or (at_most is not None and not value <= at_most)
    ):
        refuse(name, "a number" + bounds, value)
    return value


def name_or_number(name, value, names, **bounds):
    """Refuses a value that is neither one of `names` nor a finite number within `bounds` (as `number`
    takes them): `likelihood_scale must be 'pixel', 'global', 'optimal' or a number > 0. Received: ...`."""
    if (value in names) if isinstance(value, str) else _is_number(value, **bounds):
        return value
    refuse(name, ", ".join(map(repr, names)) + " or a number" + _bounds(**bounds), value)


def one_of(name, value, options):
    """Refuses a value not among the names `options`: `prior must be one of 'normal', 'mixture'.
    Received: prior='ring'`."""
    if not (isinstance(value, str) and value in options):
        refuse(name, "one of " + ", ".join(map(repr, options)), value)
    return value


def boolean(name, value):
    """Refuses anything but True or False (1 and "yes" are not switches)."""
    if not isinstance(value, bool):
        refuse(name, "True or False", value)
    return value


def _is_number(value, **bounds):
    try:
        number("", value, **bounds)
    except ValueError:
        return False
    return True


def _bounds(above=None, at_least=None, below=None, at_most=None):
    """The bounds as a message says them: " > 0", " >= 0", " in [0, 1)", " in (0, 1]" or ""."""
    if above is not None and at_least is not None or below is not None and at_most is not None:
        raise TypeError("Give one lower bound (above or at_least) and one upper bound (below or at_most).")
    low = above if above is not None else at_least
    high = below if below is not None else at_most
    if low is not None and high is not None:
        return f" in {'(' if above is not None else '['}{low}, {high}{')' if below is not None else ']'}"
    if low is not None:
        return f" > {low}" if above is not None else f" >= {low}"
    if high is not None:
        return f" < {high}" if below is not None else f" <= {high}"
    return ""
