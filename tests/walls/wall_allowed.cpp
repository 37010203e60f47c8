// Must compile: tools may include every layer below them.
#include "qmpp/check.h"
#include "qmpp/engine.h"
#include "qmpp/io.h"
#include "qmpp/report.h"
