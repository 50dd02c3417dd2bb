"""What every command and library shares: flag declaration, one-line errors, progress, files."""
