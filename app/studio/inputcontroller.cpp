#include "inputcontroller.h"

#include "qmpp/io.h"

#include <QFile>
#include <QFileInfo>
#include <QMenu>
#include <QMessageBox>
#include <QPushButton>
#include <QSettings>

#include <algorithm>
#include <cmath>

namespace studio {

namespace {

constexpr int kMaxRecent = 8;

QString cannotOpen(const QString& path, const std::exception& e) {
    return QObject::tr("Cannot open %1:\n%2")
        .arg(QFileInfo(path).fileName(), QString::fromUtf8(e.what()));
}

} // namespace

InputController::InputController(QWidget* window) : QObject(window), m_window(window) {
    m_largeChooser = [this](const QString& path, qint64 n, int patch, int suggested,
                            qint64 suggestedN) {
        QMessageBox box(QMessageBox::Question, tr("A large input"),
                        tr("%1 makes %2 tokens at %3-pixel patches. Merging that many takes a "
                           "while on every change.")
                            .arg(QFileInfo(path).fileName())
                            .arg(n)
                            .arg(patch),
                        QMessageBox::Cancel, m_window);
        QPushButton* smaller =
            box.addButton(tr("Use %1-pixel patches (%2 tokens)").arg(suggested).arg(suggestedN),
                          QMessageBox::AcceptRole);
        QPushButton* full = box.addButton(tr("Run all %1").arg(n), QMessageBox::DestructiveRole);
        box.setDefaultButton(smaller);
        box.exec();
        return box.clickedButton() == smaller ? suggested : box.clickedButton() == full ? patch : 0;
    };
    m_keyChooser = [this](const QString& path, const std::vector<qmpp::TensorInfo>& tensors,
                          TensorKeys& keys, bool& remember) {
        TensorKeysDialog d(path, tensors, keys, m_window);
        if (d.exec() != QDialog::Accepted) return false;
        keys = d.keys();
        remember = d.remember();
        return true;
    };
}

bool InputController::fail(const QString& title, const QString& message, bool quiet) {
    emit failed(title, message, quiet);
    return false;
}

void InputController::setCurrentFile(const QString& path) {
    m_current = path.isEmpty() ? QString() : QFileInfo(path).absoluteFilePath();
}

bool InputController::prepare(const QString& path, int patch, bool quiet) {
    if (QFileInfo(path).absoluteFilePath() != m_current) // a new file: nothing attached
        m_options = qmpp::InputOptions();
    m_options.patch = patch;
    if (qmpp::fileExtension(path.toStdString()) == ".safetensors")
        return resolveTensorKeys(path, false, quiet);
    return true;
}

bool InputController::resolveTensorKeys(const QString& path, bool ask, bool quiet) {
    std::vector<qmpp::TensorInfo> tensors;
    try {
        tensors = qmpp::listTensors(path.toStdString());
    } catch (const std::exception& e) {
        return fail(tr("Open failed"), cannotOpen(path, e), quiet);
    }
    bool ambiguous = false;
    TensorKeys keys = defaultTensorKeys(tensors, ambiguous);
    QSettings settings;
    const QString id = QStringLiteral("tensorKeys/") +
                       QString::fromLatin1(QFileInfo(path).absoluteFilePath().toUtf8().toBase64(
                           QByteArray::Base64UrlEncoding));
    const QStringList saved = settings.value(id).toStringList();
    if (saved.size() == 3) {
        const TensorKeys remembered{saved[0], saved[1], saved[2]};
        if (tensorKeysFit(tensors, remembered)) keys = remembered, ambiguous = false;
    }
    if (ambiguous || ask) {
        bool remember = true;
        if (!m_keyChooser || !m_keyChooser(path, tensors, keys, remember))
            return fail(tr("Open cancelled"),
                        tr("%1: no tensors chosen").arg(QFileInfo(path).fileName()), true);
        QString why;
        if (!tensorKeysFit(tensors, keys, &why))
            return fail(tr("Open failed"), tr("%1: %2").arg(QFileInfo(path).fileName(), why),
                        quiet);
        if (remember) settings.setValue(id, QStringList{keys.tokens, keys.hidden, keys.attention});
    }
    const std::string file = path.toStdString();
    m_options.key = keys.tokens.toStdString();
    // tensors of this file; files attached separately stay attached
    if (!keys.hidden.isEmpty())
        m_options.hidden = file, m_options.hiddenKey = keys.hidden.toStdString();
    else if (m_options.hidden == file)
        m_options.hidden.clear(), m_options.hiddenKey.clear();
    if (!keys.attention.isEmpty())
        m_options.attention = file, m_options.attentionKey = keys.attention.toStdString();
    else if (m_options.attention == file)
        m_options.attention.clear(), m_options.attentionKey.clear();
    return true;
}

std::shared_ptr<const qmpp::LoadedInput> InputController::load(const QString& path, bool quiet) {
    const std::string file = path.toStdString();
    try {
        auto loaded = std::make_shared<const qmpp::LoadedInput>(qmpp::loadInput(file, m_options));
        // past kLargeInput tokens, an image may be tokenized at a larger patch instead
        const qint64 n = loaded->items.front().n;
        if (loaded->image && n > kLargeInput && m_largeChooser) {
            const int patch = m_options.patch;
            const int suggested =
                patch * int(std::ceil(std::sqrt(double(n) / double(kLargeInput))));
            const auto& im = *loaded->image;
            const qint64 suggestedN = qint64(std::max(1, im.originalWidth / suggested)) *
                                      std::max(1, im.originalHeight / suggested);
            const int chosen = m_largeChooser(path, n, patch, suggested, suggestedN);
            if (chosen == 0) {
                fail(tr("Open cancelled"),
                     tr("%1: not opened (%2 tokens)").arg(QFileInfo(path).fileName()).arg(n), true);
                return nullptr;
            }
            if (chosen != patch) {
                m_options.patch = chosen;
                loaded =
                    std::make_shared<const qmpp::LoadedInput>(qmpp::loadInput(file, m_options));
            }
        }
        // the data checks of a run (finite values in range, shapes), as the CLI makes them when
        // it loads the file: a file that cannot run never becomes the open input
        qmpp::MergeParams any;
        any.k = 1;
        for (const auto& item : loaded->items)
            qmpp::validate(item, any);
        return loaded;
    } catch (const std::exception& e) {
        fail(tr("Open failed"), cannotOpen(path, e), quiet);
        return nullptr;
    }
}

bool InputController::withOptions(const std::function<void(qmpp::InputOptions&)>& change,
                                  const std::function<bool()>& reload) {
    const qmpp::InputOptions before = m_options;
    change(m_options);
    if (reload()) return true;
    m_options = before;
    return false;
}

QString InputController::unpackSample(const QString& name) {
    const QString target = m_samples.filePath(name);
    if (!QFile::exists(target) && !QFile::copy(":/samples/" + name, target)) {
        fail(tr("Sample"), tr("Cannot unpack the bundled sample %1").arg(name), true);
        return {};
    }
    return target;
}

void InputController::setRecentMenu(QMenu* menu) {
    m_recent = menu;
    refreshRecent();
}

void InputController::addRecent(const QString& path) {
    if (isSample(path)) return;
    QSettings s;
    QStringList files = s.value("recentFiles").toStringList();
    const QString abs = QFileInfo(path).absoluteFilePath();
    files.removeAll(abs);
    files.prepend(abs);
    while (files.size() > kMaxRecent)
        files.removeLast();
    s.setValue("recentFiles", files);
    refreshRecent();
}

void InputController::refreshRecent() {
    if (!m_recent) return;
    m_recent->clear();
    const QStringList files = QSettings().value("recentFiles").toStringList();
    for (const QString& f : files)
        m_recent->addAction(QFileInfo(f).fileName(), this, [this, f] { emit openRequested(f); })
            ->setToolTip(f);
    m_recent->setEnabled(!files.isEmpty());
}

QString InputController::describe(const StudioInput& in, qmpp::i64 batchItem) {
    const auto& t = in.tokens();
    QString s = QStringLiteral("<b>%1</b><br>").arg(QFileInfo(in.path).fileName().toHtmlEscaped());
    if (in.isImage()) {
        const auto& im = *in.loaded->image;
        s += tr("image %1×%2 (resized from %3×%4)<br>%5×%6 patches of %7 px<br>")
                 .arg(im.width)
                 .arg(im.height)
                 .arg(im.originalWidth)
                 .arg(im.originalHeight)
                 .arg(t.gridCols)
                 .arg(t.gridRows)
                 .arg(im.patch);
    }
    s += tr("N = %1 tokens, D = %2").arg(t.n).arg(t.d);
    if (in.loaded->batched)
        s += tr("<br>batch of %1: showing item 0").arg(in.loaded->items.size());
    else if (in.loaded->kind == qmpp::InputKind::Embeddings && in.loaded->sourceShape.size() == 3)
        s += tr("<br>item %1 of a batch of %2").arg(batchItem).arg(in.loaded->sourceShape[0]);
    if (!t.labels.empty()) s += tr("<br>token strings: %1").arg(t.labels.size());
    if (t.hiddenLayers) s += tr("<br>hidden states: L = %1").arg(t.hiddenLayers);
    if (t.attnLayers)
        s += tr("<br>attention maps: L = %1, H = %2").arg(t.attnLayers).arg(t.attnHeads);
    return s;
}

} // namespace studio
