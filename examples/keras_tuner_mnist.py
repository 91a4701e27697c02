"""The seed notes' keras-tuner MNIST example, on bandit_tune.

The only change from the keras-tuner version is the import line. MNIST comes
from ``keras.datasets.mnist`` when the network allows; otherwise scikit-learn's
bundled digits, scaled up to 28x28, stand in (one line says so).

    python examples/keras_tuner_mnist.py                 # MNIST (or digits offline)
    python examples/keras_tuner_mnist.py --data digits --max-epochs 3
"""

import argparse

import numpy as np
import tensorflow as tf
from tensorflow.keras.layers import Dense, Flatten

import bandit_tune as kt  # was: import keras_tuner as kt


def load_data(source):
    if source in ("auto", "mnist"):
        try:
            mnist = tf.keras.datasets.mnist  # Keras handwriting images
            (x_train, y_train), (x_test, y_test) = mnist.load_data()
            return (x_train / 255.0, y_train), (x_test / 255.0, y_test)
        except Exception as exc:  # no network: fall back to the bundled digits
            if source == "mnist":
                raise
            reason = type(exc).__name__
            print(f"MNIST could not be downloaded ({reason}); using scikit-learn's digits.")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # 8x8 -> 24x24 by repeating pixels, then pad to MNIST's 28x28
    images = np.kron(digits.images / 16.0, np.ones((3, 3)))
    images = np.pad(images, ((0, 0), (2, 2), (2, 2))).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.2, stratify=digits.target, random_state=0
    )
    return (x_train, y_train), (x_test, y_test)


def build_model(hp):
    units = hp.Int("units", min_value=32, max_value=512, step=32)
    model = tf.keras.Sequential()
    model.add(tf.keras.Input(shape=(28, 28)))
    model.add(Flatten())  # to use 'Dense' Layer
    model.add(Dense(units=units, activation="relu"))
    model.add(Dense(10, activation="softmax"))
    # learning rate
    learning_rate = hp.Choice("learning_rate", values=[1e-2, 1e-3, 1e-4])
    optim_fn = tf.keras.optimizers.Adam(learning_rate=learning_rate)
    model.compile(optimizer=optim_fn, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", choices=["auto", "mnist", "digits"], default="auto")
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--directory", default="bandit_tune_results")
    parser.add_argument(
        "--limit", type=int, default=None, help="use only this many training images"
    )
    args = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = load_data(args.data)
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]

    tuner = kt.Hyperband(
        build_model,
        objective="val_accuracy",
        max_epochs=args.max_epochs,
        factor=3,
        directory=args.directory,
        project_name="intro_to_kt",
        overwrite=True,
    )
    stop_early = tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=5)
    # validation_split keeps 10% of the training data for decisions; the test set stays unseen
    tuner.search(x_train, y_train, epochs=50, validation_split=0.1, callbacks=[stop_early])

    best_hps = tuner.get_best_hyperparameters(num_trials=1)[0]
    print(
        f"best units: {best_hps.get('units')}, best learning rate: {best_hps.get('learning_rate')}"
    )
    tuner.results_summary(num_trials=3)
    best_model = tuner.get_best_models(num_models=1)[0]
    loss, accuracy = best_model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy of the best model: {accuracy:.4f}")
    return tuner


if __name__ == "__main__":
    main()
