/* libstasis: the same API as <criu/criu.h>, under Stasis's own name. */
#ifndef STASIS_H
#define STASIS_H
#include "criu/criu.h"
#endif
