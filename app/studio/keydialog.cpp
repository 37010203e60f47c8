#include "keydialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileInfo>
#include <QFormLayout>
#include <QLabel>
#include <QPushButton>
#include <QVBoxLayout>

namespace studio {

namespace {

const qmpp::TensorInfo* findKey(const std::vector<qmpp::TensorInfo>& ts, const QString& key) {
    for (const auto& t : ts)
        if (QString::fromStdString(t.key) == key) return &t;
    return nullptr;
}

QString shapeText(const std::vector<qmpp::i64>& s) {
    QStringList parts;
    for (auto d : s)
        parts << QString::number(d);
    return "[" + parts.join(", ") + "]";
}

// tokens [N, D] or [B, N, D] -> (N, D)
bool tokenShape(const qmpp::TensorInfo& t, qmpp::i64& n, qmpp::i64& d) {
    if (t.shape.size() != 2 && t.shape.size() != 3) return false;
    n = t.shape[t.shape.size() - 2];
    d = t.shape.back();
    return true;
}

} // namespace

TensorKeys defaultTensorKeys(const std::vector<qmpp::TensorInfo>& tensors, bool& ambiguous) {
    const qmpp::TensorChoice c = qmpp::defaultTensors(tensors); // the CLI's choice too
    ambiguous = c.ambiguous;
    return {QString::fromStdString(c.tokens), QString::fromStdString(c.hidden),
            QString::fromStdString(c.attention)};
}

bool tensorKeysFit(const std::vector<qmpp::TensorInfo>& tensors, const TensorKeys& keys,
                   QString* why) {
    auto no = [&](const QString& w) {
        if (why) *why = w;
        return false;
    };
    const auto* t = findKey(tensors, keys.tokens);
    qmpp::i64 n = 0, d = 0;
    if (!t) return no(QObject::tr("choose the tensor that holds the tokens"));
    if (!tokenShape(*t, n, d))
        return no(QObject::tr("tokens must be [N, D] or [B, N, D]; %1 is %2")
                      .arg(keys.tokens, shapeText(t->shape)));
    if ((!keys.hidden.isEmpty() || !keys.attention.isEmpty()) && t->shape.size() == 3)
        return no(
            QObject::tr("hidden states and attention maps belong to one token set, not a batch"));
    if (!keys.hidden.isEmpty()) {
        const auto* h = findKey(tensors, keys.hidden);
        if (!h || !qmpp::hiddenFits(*h, n, d))
            return no(QObject::tr("hidden states must be [L, %1, %2]").arg(n).arg(d));
    }
    if (!keys.attention.isEmpty()) {
        const auto* a = findKey(tensors, keys.attention);
        if (!a || !qmpp::attentionFits(*a, n))
            return no(QObject::tr("attention maps must be [L, %1, %1] or [L, H, %1, %1]").arg(n));
    }
    return true;
}

TensorKeysDialog::TensorKeysDialog(const QString& file,
                                   const std::vector<qmpp::TensorInfo>& tensors,
                                   const TensorKeys& initial, QWidget* parent)
    : QDialog(parent), m_tensors(tensors) {
    setWindowTitle(tr("Choose tensors — %1").arg(QFileInfo(file).fileName()));
    auto* v = new QVBoxLayout(this);
    v->addWidget(
        new QLabel(tr("%1 holds %2 tensors. Which are the tokens, and which the hidden states and "
                      "attention maps that go with them?")
                       .arg(QFileInfo(file).fileName().toHtmlEscaped())
                       .arg(tensors.size())));
    auto* form = new QFormLayout;
    m_tokens = new QComboBox(this);
    m_hidden = new QComboBox(this);
    m_attention = new QComboBox(this);
    m_hidden->addItem(tr("(none)"), QString());
    m_attention->addItem(tr("(none)"), QString());
    for (const auto& t : tensors) {
        const QString key = QString::fromStdString(t.key);
        const QString label = QStringLiteral("%1  %2 %3")
                                  .arg(key, QString::fromStdString(t.dtype), shapeText(t.shape));
        if (t.shape.size() == 2 || t.shape.size() == 3) m_tokens->addItem(label, key);
        if (t.shape.size() == 3) m_hidden->addItem(label, key);
        if (t.shape.size() == 3 || t.shape.size() == 4) m_attention->addItem(label, key);
    }
    auto pick = [](QComboBox* box, const QString& key) {
        const int i = box->findData(key);
        if (i >= 0) box->setCurrentIndex(i);
    };
    pick(m_tokens, initial.tokens);
    pick(m_hidden, initial.hidden);
    pick(m_attention, initial.attention);
    form->addRow(tr("Tokens [N, D] or [B, N, D]"), m_tokens);
    form->addRow(tr("Hidden states [L, N, D]"), m_hidden);
    form->addRow(tr("Attention maps [L, (H,) N, N]"), m_attention);
    v->addLayout(form);
    m_problem = new QLabel(this);
    m_problem->setStyleSheet("color: #d04030");
    v->addWidget(m_problem);
    m_remember = new QCheckBox(tr("Remember for this file"), this);
    m_remember->setChecked(true);
    v->addWidget(m_remember);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    m_ok = buttons->button(QDialogButtonBox::Ok);
    v->addWidget(buttons);
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    for (QComboBox* b : {m_tokens, m_hidden, m_attention})
        connect(b, &QComboBox::currentIndexChanged, this, &TensorKeysDialog::validate);
    validate();
}

TensorKeys TensorKeysDialog::keys() const {
    return {m_tokens->currentData().toString(), m_hidden->currentData().toString(),
            m_attention->currentData().toString()};
}

bool TensorKeysDialog::remember() const {
    return m_remember->isChecked();
}

void TensorKeysDialog::validate() {
    QString why;
    const bool ok = tensorKeysFit(m_tensors, keys(), &why);
    m_problem->setText(ok ? QString() : why);
    m_ok->setEnabled(ok);
}

} // namespace studio
