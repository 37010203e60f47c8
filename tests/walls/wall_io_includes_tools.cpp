// Must not compile: the readers know nothing of the checks (qmpp_tools sits above io).
#include "qmpp/check.h"
#include "qmpp/io.h"
