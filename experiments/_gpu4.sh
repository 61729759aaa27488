export PYTHONUNBUFFERED=1 PYTHONPATH=.
for part in dense mixer; do
  timeout 200 ncu --profile-from-start off --csv --metrics gpu__time_duration.sum --cache-control none python3 experiments/profile_token.py --part=$part > $OUT/ncu_$part.csv 2> $OUT/ncu_$part.err
  python3 experiments/_ncu_summary.py $OUT/ncu_$part.csv || tail -5 $OUT/ncu_$part.err
done
