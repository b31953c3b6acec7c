"""Numbers of the paper's protocol that several layers share, written once."""

# A pixel is object when the predicted probability exceeds this (RITM's and the paper's threshold).
MASK_THRESHOLD = 0.49
