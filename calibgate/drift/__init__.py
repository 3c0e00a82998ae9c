"""The drift loop: is production moving away from the production model's training data, which texts to
label, and retraining that ends in a pull request.

* :mod:`~calibgate.records.thresholds`: the policy's ``drift:`` section.
* :mod:`~calibgate.drift.reference`: the production version's training data, read at its lineage revision.
* :mod:`~calibgate.drift.outputs`: black-box shift on the production model's outputs (Rabanser et al. 2019).
* :mod:`~calibgate.drift.suggest`: which unlabeled texts are worth labeling.
* :mod:`~calibgate.drift.pipeline`: ``calibgate drift``; :mod:`~calibgate.drift.retrain`: ``calibgate retrain``.
"""
