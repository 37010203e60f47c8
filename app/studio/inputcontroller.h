// Which file is open and with what: the input options (tensor keys, attached files, batch
// item, patch), the large-input offer, the bundled samples and the recent files. It loads and
// checks a file; the window decides what to show.
#pragma once

#include "keydialog.h"
#include "runner.h"

#include "qmpp/inputs.h"

#include <QObject>
#include <QString>
#include <QTemporaryDir>

#include <functional>
#include <memory>

class QMenu;
class QWidget;

namespace studio {

class InputController : public QObject {
    Q_OBJECT
  public:
    explicit InputController(QWidget* window);

    // How the tensors of an ambiguous .safetensors file are chosen: a dialog unless replaced
    // (tests). Returns false when cancelled.
    using KeyChooser =
        std::function<bool(const QString& path, const std::vector<qmpp::TensorInfo>& tensors,
                           TensorKeys& keys, bool& remember)>;
    // An image past kLargeInput tokens: the patch size to tokenize it with (a larger one is
    // offered), its own to run at full size, 0 to cancel. A dialog unless replaced (tests).
    static constexpr qint64 kLargeInput = 20000;
    using LargeInputChooser = std::function<int(const QString& path, qint64 n, int patch,
                                                int suggested, qint64 suggestedN)>;
    void setKeyChooser(KeyChooser c) { m_keyChooser = std::move(c); }
    void setLargeInputChooser(LargeInputChooser c) { m_largeChooser = std::move(c); }

    qmpp::InputOptions& options() { return m_options; }
    const qmpp::InputOptions& options() const { return m_options; }
    const QString& currentFile() const { return m_current; }
    void setCurrentFile(const QString& path);

    // Before opening `path`: a new file starts with nothing attached and all of a batch, and a
    // .safetensors file gets its tensor keys. False (with failed()) when that fails.
    bool prepare(const QString& path, int patch, bool quiet);
    // Asks (when `ask`, or when the file is ambiguous and nothing is remembered) which tensors
    // of a .safetensors file to use, and sets the options from them.
    bool resolveTensorKeys(const QString& path, bool ask, bool quiet);
    // Loads `path` with the options and checks it as a run would: a file that cannot run is
    // refused here, with failed(). A large image may change options().patch.
    std::shared_ptr<const qmpp::LoadedInput> load(const QString& path, bool quiet);

    // Runs `change` on the options and `reload()`; on failure the options are as before.
    bool withOptions(const std::function<void(qmpp::InputOptions&)>& change,
                     const std::function<bool()>& reload);

    // Unpacks a bundled sample (a Qt resource) into a temporary folder: its path, or empty.
    QString unpackSample(const QString& name);
    bool isSample(const QString& path) const { return path.startsWith(m_samples.path()); }

    // Open recent: the menu to keep, and a file to put on top of it.
    void setRecentMenu(QMenu* menu);
    void addRecent(const QString& path);

    // The input panel's description of an input.
    static QString describe(const StudioInput& in, qmpp::i64 batchItem);

  signals:
    // A refusal, with a title for a message box (unless `quiet`).
    void failed(const QString& title, const QString& message, bool quiet);
    void openRequested(const QString& path);

  private:
    bool fail(const QString& title, const QString& message, bool quiet);
    void refreshRecent();

    QWidget* m_window;
    qmpp::InputOptions m_options;
    QString m_current;
    KeyChooser m_keyChooser;
    LargeInputChooser m_largeChooser;
    QTemporaryDir m_samples;
    QMenu* m_recent = nullptr;
};

} // namespace studio
