"""The platforms' evaluation of riders: indicators computed from the programme's data, weighted (typed in,
by AHP from pairwise judgements, or by the entropy weight method from the period's data), scored, ranked
and graded per month; each score explainable line by line."""
