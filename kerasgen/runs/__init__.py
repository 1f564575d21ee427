"""Training runs: one harness (`harness.Run`) and a thin module per model.

- `harness.py`: the folder, config, resume, callbacks, fit, checks, saving and export every run shares;
- `vae.py`, `gan.py`, `classifier.py`: what each model's run adds (its data, model and artifacts);
- `classifier.py` also trains the classifier that `evaluation.domain.choose_classifier` asks for
  when no shipped one serves the data (it is passed in as `train`: evaluation never imports runs);
- `pipeline.py`: VAE, then the GAN from its decoder, both evaluated.
"""
