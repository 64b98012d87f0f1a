"""Label review rounds: several raters, a consensus, and the ``uncertain`` class.

The loop (``docs/label-rounds.md``)::

    mfcurate detect --dataset DS --split all --models RUN --out det
    mfcurate label-round new DS --candidates det/candidates.csv --raters r1,r2,r3 --out round1
    # each rater labels round1/packages/<rater>/ in QuPath (or the CSV sheet)
    mfcurate label-round import round1 r1.geojson r2-sheet.csv ...
    mfcurate label-round resolve round1 --rule majority --senior r3

Modules, one job each:

* :mod:`.classes` — the three classes, their QuPath names/colours, the vote labels;
* :mod:`.round` — ``round.json``: raters, objects, each rater's order, feature ids;
* :mod:`.select` — detector candidates, uncertain/flagged objects, a seeded sample;
* :mod:`.package` — QuPath GeoJSON, image list and CSV sheet per rater;
* :mod:`.votes` — reading rater files back, validation, the idempotent vote ledger;
* :mod:`.consensus` — majority / unanimous / senior;
* :mod:`.agreement` — Fleiss' κ, Cohen's κ, confusion counts; :mod:`.plots` — the figure;
* :mod:`.layer` — the round's rows of the dataset's ``labels`` layer;
* :mod:`.ops` — the three commands; :mod:`.summary` — agreement of a dataset (info, report).
"""
