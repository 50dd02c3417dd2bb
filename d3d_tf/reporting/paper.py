"""Top-1 accuracies published for D3D (Stroud et al., WACV 2020) and S3D-G (Xie et al., 2018).

These are THEIR numbers, on real datasets and full-size models, quoted for comparison only;
nothing in this package measured them. As republished from the D3D paper's tables by public
benchmark sites; the S3D-G RGB figure is from the S3D-G paper.
"""

# (dataset, model, top-1 %, note).
PAPER_TOP1 = (
    ("Kinetics-400", "S3D-G (RGB)", 74.7, "S3D-G paper"),
    ("Kinetics-400", "D3D", 75.9, ""),
    ("Kinetics-400", "D3D + S3D-G (RGB)", 76.5, "ensemble"),
    ("Kinetics-600", "D3D", 77.9, ""),
    ("Kinetics-600", "D3D + S3D-G (RGB)", 79.1, "ensemble"),
    ("UCF-101", "D3D", 97.1, "Kinetics-600 pretraining"),
    ("UCF-101", "D3D + D3D", 97.6, "ensemble"),
    ("HMDB-51", "D3D", 78.7, "Kinetics-400 pretraining"),
    ("HMDB-51", "D3D", 79.3, "Kinetics-600 pretraining"),
    ("HMDB-51", "D3D + D3D", 80.5, "ensemble"),
)


def to_markdown() -> str:
  lines = ["| dataset | model (theirs) | top-1 % (paper) | note |", "|---|---|---|---|"]
  lines += [f"| {d} | {m} | {a:.1f} | {n} |" for d, m, a, n in PAPER_TOP1]
  return "\n".join(lines)
