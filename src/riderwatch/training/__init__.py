"""Training: courses with their materials and question banks, quizzes and their results."""
