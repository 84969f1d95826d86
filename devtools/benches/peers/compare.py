"""Checks a peer's output against xinyong's, row for row: the snapshot (every record's
key, winning source line, 更新时间 and each xzcf field) and the quarantine (line, reason,
field). Reads xinyong's snapshot as any reader would: the Hive-partitioned directory.
Exits 1 on the first difference, printing a few of the rows that differ.

Usage: python compare.py XINYONG_DATA_DIR PEER_OUT_DIR
"""

import sys
from pathlib import Path

import polars as pl


def normalised(df: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    return df.select(
        [pl.col(c).cast(pl.String).fill_null("") for c in columns]
    ).sort(columns)


def differ(name: str, ours: pl.DataFrame, theirs: pl.DataFrame) -> bool:
    if ours.equals(theirs):
        print(f"  {name}: {ours.height} rows, identical")
        return False
    only_ours = ours.join(theirs, on=ours.columns, how="anti")
    only_theirs = theirs.join(ours, on=ours.columns, how="anti")
    print(f"  {name}: DIFFERENT — xinyong {ours.height} rows, peer {theirs.height}")
    print(f"    only in xinyong ({only_ours.height}):\n{only_ours.head(5)}")
    print(f"    only in the peer ({only_theirs.height}):\n{only_theirs.head(5)}")
    return True


def main(data_dir: str, peer_dir: str) -> int:
    data, peer = Path(data_dir), Path(peer_dir)
    theirs = pl.read_parquet(peer / "snapshot.parquet")
    columns = theirs.columns
    ours = pl.read_parquet(
        str(data / "snapshot" / "dataset=xzcf" / "*" / "*.parquet"), hive_partitioning=True
    )
    bad = differ("snapshot", normalised(ours, columns), normalised(theirs, columns))
    q_columns = ["source_line", "reason", "field"]
    q_ours = pl.read_parquet(str(data / "quarantine" / "*" / "*.parquet"))
    q_theirs = pl.read_parquet(peer / "quarantine.parquet")
    bad |= differ("quarantine", normalised(q_ours, q_columns), normalised(q_theirs, q_columns))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
