"""The drift loop: is production moving away from the production model's training data, which texts to
label, and retraining that ends in a pull request.

* :mod:`~calibgate.records.thresholds`: the policy's ``drift:`` section.
* :mod:`~calibgate.drift.reference`: the production version's training data, read at its lineage revision.
* :mod:`~calibgate.drift.outputs`: black-box shift on the production model's outputs (Rabanser et al. 2019).
* :mod:`~calibgate.drift.suggest`: which unlabeled texts are worth labeling.
* :mod:`~calibgate.drift.record`: ``drift.json``; :mod:`~calibgate.drift.render`: the issue and PR texts.
* :mod:`~calibgate.drift.retrain`: ``calibgate retrain``; the ``calibgate drift`` run itself is
  :mod:`calibgate.pipeline.drift` (it wires the registry, the signals and GitHub together).
"""
