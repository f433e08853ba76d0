"""From saved results to what people read: the tables, the figures, the results page and the
README's generated blocks, the paper's published numbers, two rows compared, a streaming run's text."""
