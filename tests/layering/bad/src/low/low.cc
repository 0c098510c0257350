#include "codey/low.h"
#include "codey/high.h"
