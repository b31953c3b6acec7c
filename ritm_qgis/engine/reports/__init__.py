"""Results drawn and written: ``report_table`` (text/Markdown Table 1), ``report_html``,
``figures`` (IoU curves), ``visualize`` (overlay, error map), ``sample_table`` (ious.npy + samples.csv).
"""
