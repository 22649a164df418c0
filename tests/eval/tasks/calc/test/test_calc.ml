let () =
  assert (Calc.add 2 3 = 5);
  assert (Calc.double 4 = 8);
  assert (Calc.square 3 = 9);
  assert (Calc.clamp 0 10 12 = 10)
