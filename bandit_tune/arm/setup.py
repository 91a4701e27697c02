"""Setting up a process that trains arms: Keras imported without its optional integrations."""

from __future__ import annotations

#: Packages Keras imports only for optional integrations (scikit-learn wrappers,
#: plotting, DataFrame inputs): together ~3 s of its ~8 s import on a 2-core laptop.
#: SciPy comes in through TensorFlow's legacy ``tf.keras`` v1 engine only (~0.4 s);
#: Keras 3 recognises SciPy sparse inputs by their module name, with or without it.
_OPTIONAL_FOR_KERAS = ("sklearn", "matplotlib", "pandas", "scipy")


def import_keras_lean() -> None:
    """Import Keras in a helper or worker process without its optional integrations.

    Keras imports scikit-learn, matplotlib and pandas when they are installed, for
    its scikit-learn wrappers, image galleries and DataFrame inputs (TensorFlow's
    legacy ``tf.keras`` v1 engine imports SciPy); an arm needs
    none of them unless its data or code brings them (then they are imported
    already and are left alone). They are hidden during the import only: the
    process can import them normally afterwards. Never called in the user's process.
    """
    import sys

    if "keras" in sys.modules:
        return
    hidden = [name for name in _OPTIONAL_FOR_KERAS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        import keras  # noqa: F401
    except ImportError:
        pass  # no Keras here: the caller's own import reports it
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def warm_keras() -> None:
    """Import Keras lean in a worker before its first arm comes (the pool's ``setup``)."""
    import_keras_lean()
    import keras  # noqa: F401
