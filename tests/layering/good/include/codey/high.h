#pragma once
#include "codey/low.h"
