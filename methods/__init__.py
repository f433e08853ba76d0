"""Video recognition methods behind one interface (issue 3: Uniform, LSTM; later issues
add LiteEval, LiteEval-RL, FrameGlimpse and FastForward). Empty until the interface lands."""
