"""What a pair's numbers are: costs from the read meter and ptflops, mAP and top-1, paired
bootstrap intervals, where fine reads land against the synthetic evidence, measured time."""
