#include "codey/high.h"
#include "helper.h"
#include <vector>
