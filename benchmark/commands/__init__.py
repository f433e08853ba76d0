"""Commands built on a run's trained pairs or settings: the paper's ablations (Tables 2-4), the
online budget curves (Figure 2), and LiteEval streaming a real video."""
