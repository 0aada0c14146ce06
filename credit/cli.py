"""The ``credit`` command line. Thin: it parses, calls the core and prints.

Each command group lives in its own module under :mod:`credit.commands` and is added
here; heavy libraries are imported inside the commands so ``credit --help`` stays fast.
"""

from __future__ import annotations

import json

import typer

from credit.settings import get_settings

app = typer.Typer(
    name="credit",
    help="tradecredit: SME trade-credit scoring from customs, logistics and payment histories.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """tradecredit: SME trade-credit scoring from customs, logistics and payment histories.

    Every command reads its settings from TRADECREDIT_* environment variables
    (see `credit config`); the default data directory is ./var.
    """


@app.command("config")
def config_cmd() -> None:
    """Print the resolved settings (data directory, stores, MLflow URI) as JSON."""
    s = get_settings()
    typer.echo(
        json.dumps(
            {
                "data_dir": str(s.data_dir),
                "record_store": str(s.store_path),
                "database_url": s.service_database_url,
                "mlflow_tracking_uri": s.tracking_uri,
            },
            indent=2,
        )
    )


# --- command registrations (one line per command module) -----------------------------
from credit.commands import ingest as _ingest  # noqa: E402

app.command("ingest")(_ingest.ingest)
from credit.commands import contract as _contract  # noqa: E402

app.add_typer(_contract.app, name="contract")
from credit.commands import keys as _keys  # noqa: E402
from credit.commands import score as _score  # noqa: E402
from credit.commands import serve as _serve  # noqa: E402

app.add_typer(_keys.app, name="keys")
app.command("serve")(_serve.serve)
app.command("score")(_score.score)
from credit.commands import features as _features  # noqa: E402

app.add_typer(_features.app, name="features")
from credit.commands import simulate as _simulate  # noqa: E402

app.command("simulate")(_simulate.simulate)
from credit.commands import offers as _offers  # noqa: E402

app.command("offers")(_offers.offers)
from credit.commands import links as _links  # noqa: E402

app.add_typer(_links.app, name="links")
from credit.commands import consents as _consents  # noqa: E402
from credit.commands import decisions as _decisions  # noqa: E402

app.add_typer(_consents.app, name="consents")
app.add_typer(_decisions.app, name="decisions")
from credit.commands import records as _records  # noqa: E402

app.add_typer(_records.app, name="records")
from credit.commands import reviews as _reviews  # noqa: E402

app.add_typer(_reviews.app, name="reviews")
from credit.commands import events as _events  # noqa: E402

app.add_typer(_events.app, name="events")

from credit.commands import train as _train  # noqa: E402

app.command("train")(_train.train)
app.command("promote")(_train.promote)
app.command("models")(_train.models_cmd)
from credit.commands import backtest as _backtest  # noqa: E402
from credit.commands import monitor as _monitor  # noqa: E402
from credit.commands import report as _report  # noqa: E402

app.command("report")(_report.report)
app.add_typer(_monitor.app, name="monitor")
app.command("backtest")(_backtest.backtest)


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
