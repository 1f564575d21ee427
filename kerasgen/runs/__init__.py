"""Training runs: one harness (`harness.Run`) and a thin module per model.

- `harness.py`: the folder, config, resume, callbacks, fit, checks, saving and export every run shares;
- `vae.py`, `gan.py`, `classifier.py`: what each model's run adds (its data, model and artifacts);
- `domain.py`: which classifier scores a dataset's samples;
- `pipeline.py`: VAE, then the GAN from its decoder, both evaluated.
"""
