// Must not compile: the engine reads no files (qmpp_io sits above it).
#include "qmpp/engine.h"
#include "qmpp/io.h"
