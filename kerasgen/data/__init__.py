"""Image datasets for kerasgen: one loader, one preprocessing path, many sources.

`sources.py` reads raw arrays (`load_arrays`, `RawData`); `pipeline.py` checks,
scales, splits and binarizes them and builds `tf.data` pipelines
(`load_dataset`, `DatasetSplits`).

Example:

>>> from kerasgen.data import load_dataset
>>> data = load_dataset("mnist-5k", batch_size=128, binarize="dynamic")
>>> images, labels = next(iter(data.train))
"""

from kerasgen.data.pipeline import BINARIZATIONS, DatasetSplits, load_dataset
from kerasgen.data.sources import RawData, load_arrays

__all__ = ["BINARIZATIONS", "DatasetSplits", "RawData", "load_arrays", "load_dataset"]
