"""Training of the learned models `qa` ships (today: the reader, `python -m qa.train reader`).

`qa.train.split` holds the train/test split of the evaluation data; `qa eval` imports it to
report on the test part only.
"""
