import jaraco.functools
import more_itertools
import numpy

print(numpy.__version__, len(list(more_itertools.chunked(range(10), 3))))
