#include "codey/low.h"
#include "low/private.h"
