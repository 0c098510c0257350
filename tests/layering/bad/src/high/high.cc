#include "codey/high.h"
#include "codey/low.h"
#include "low/private.h"
#include "codey/nobody.h"
